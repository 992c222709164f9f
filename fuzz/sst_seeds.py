#!/usr/bin/env python3
"""Write the small seeds of fuzz/corpus/sst: stores laid out as the Windows
Update stores in ../shared/corpus/sst are (the same property ids in the same
order, zero-length FILETIMEs, a certificate that is not strict DER), around
our own certificates, so that no byte of those files is copied here.

    python3 fuzz/sst_seeds.py CA.der LEAF.der OUTDIR

CA.der and LEAF.der are any small certificates (fuzz/corpus/sst was made with
P-256 ones from openssl req); LEAF.der must carry basicConstraints CA:FALSE,
which is re-encoded with its DEFAULT written out (BER, not DER), as one
certificate of the disallowed store is.
"""
import hashlib
import os
import struct
import sys


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    lb = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([tag, 0x80 | len(lb)]) + lb + body


def parse(b, i=0):
    """(tag, header length, body length) of the TLV at i."""
    tag, n = b[i], b[i + 1]
    if n < 0x80:
        return tag, 2, n
    k = n & 0x7f
    return tag, 2 + k, int.from_bytes(b[i + 2:i + 2 + k], 'big')


def children(b):
    out, i = [], 0
    while i < len(b):
        _, h, n = parse(b, i)
        out.append(b[i:i + h + n])
        i += h + n
    return out


def body(t):
    _, h, n = parse(t)
    return t[h:h + n]


def oid(dotted):
    a = [int(x) for x in dotted.split('.')]
    out = bytes([40 * a[0] + a[1]])
    for v in a[2:]:
        enc = [v & 0x7f]
        v >>= 7
        while v:
            enc.append(0x80 | (v & 0x7f))
            v >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, out)


def explicit_default(cert):
    """basicConstraints' SEQUENCE {} rewritten as SEQUENCE { BOOLEAN FALSE }."""
    tbs, alg, sig = children(body(cert))
    fields = children(body(tbs))
    for k, f in enumerate(fields):
        if f[0] != 0xa3:
            continue
        exts = children(body(children(body(f))[0]))
        for j, e in enumerate(exts):
            parts = children(body(e))
            if parts[0] == oid('2.5.29.19'):
                parts[-1] = tlv(0x04, tlv(0x30, bytes.fromhex('010100')))
                exts[j] = tlv(0x30, b''.join(parts))
        fields[k] = tlv(0xa3, tlv(0x30, b''.join(exts)))
    return tlv(0x30, tlv(0x30, b''.join(fields)) + alg + sig)


def element(pid, value):
    return struct.pack('<III', pid, 1, len(value)) + value


def store(*groups):
    return b'\0\0\0\0CERT' + b''.join(groups) + b'\0' * 12


def group(cert, pids, name='Fuzz Root', empty=()):
    """The properties pids, in that order, then the certificate."""
    eku = tlv(0x30, oid('1.3.6.1.5.5.7.3.4') + oid('1.3.6.1.5.5.7.3.1'))
    filetime = struct.pack('<Q', 133000000000000000)
    values = {
        3: hashlib.sha1(cert).digest(),
        9: eku,
        11: (name + '\0').encode('utf-16-le'),
        20: hashlib.sha1(cert[-64:]).digest(),
        29: hashlib.md5(cert[:64]).digest(),
        83: tlv(0x30, tlv(0x30, oid('1.3.6.1.4.1.311.60.1.1') +
                          tlv(0x30, tlv(0x30, oid('1.3.6.1.4.1.311.60.1.1'))))),
        98: hashlib.sha256(cert).digest(),
        104: filetime,
        105: tlv(0x30, oid('1.3.6.1.4.1.311.60.3.1')),
        122: tlv(0x30, oid('1.3.6.1.5.5.7.3.3')),
        126: filetime,
        127: tlv(0x30, oid('1.3.6.1.5.5.7.3.4')),
    }
    return b''.join(element(p, b'' if p in empty else values[p]) for p in pids) + \
        element(0x20, cert)


def main():
    ca = open(sys.argv[1], 'rb').read()
    leaf = open(sys.argv[2], 'rb').read()
    out = sys.argv[3]
    seeds = {
        # certutil -generateSSTFromWU, 2025: every kind of root-program property
        'wu-root-layout.sst': store(group(ca, [11, 98, 9, 20, 29, 122, 126, 104, 3])),
        'wu-root-most-properties.sst':
            store(group(ca, [9, 11, 83, 98, 127, 20, 29, 122, 126, 104, 105, 3])),
        # zero-length FILETIMEs, as 2 and 6 certificates of the 2025 store have
        'wu-root-empty-filetime.sst':
            store(group(ca, [9, 11, 83, 98, 20, 29, 122, 104, 126, 3], empty=(104, 126))),
        # the 2021 store: two groups, a name beyond the BMP
        'wu-roots-2021-layout.sst':
            store(group(ca, [9, 11, 98, 83, 20, 29, 3]),
                  group(leaf, [11, 98, 9, 20, 29, 3], name='Fuzz \u00c4 \u20ac \U0001d11e')),
        # certutil -syncWithWU: only the SHA-1 property
        'wu-disallowed-layout.sst': store(group(ca, [3]), group(leaf, [3])),
        'wu-disallowed-not-der.sst': store(group(explicit_default(leaf), [3])),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
