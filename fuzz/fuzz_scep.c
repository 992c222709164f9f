/*
 * libFuzzer target: a pkiMessage as the SCEP endpoint receives it
 * (smime_scep_read, then smime_scep_open with the RA's key below), and the
 * same bytes as a GetCACert answer and a GetCACaps answer, as smime enroll
 * receives them.  The key is a throw-away made for fuzzing only; the seed
 * corpus (fuzz/corpus/scep) is encrypted to it so that the fuzzer starts
 * past the decryption.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/pem.h>

#include <smime/smime.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ra_key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEugIBADANBgkqhkiG9w0BAQEFAASCBKQwggSgAgEAAoIBAQCuX9qLzIzkbgvX\n"
	"smNGgMhUKArS2jhqJle2pNS5ez3QtXU/1sgJU5OH5910FIbjoVE0ROpyg10o6FEk\n"
	"v9HbA+lN/aMZ+fFWnerYsJXaTwcDSC4LnzVgQDnyuoWULzFV5YPUn83MT8txIWUX\n"
	"mtW157RlBq4KBF+cFuEfjerWtTv0gdvlRzp8WOmoOLZN91xfn6g3F8gkYnQ14q0T\n"
	"PNk4z0893b6d7rPJrL7e7FWPGAC7ThiulzRyI4dnlIrTgs5QcRmOkGkKCNnSrI4R\n"
	"nbX3s/niFShyB4jX2Gv0hEvHkDMnHJDmsUWEG8eus3gH/3kRS+SiauJyMjJtupKM\n"
	"1Lv3GeqjAgMBAAECgf8oL+8uSPYvry0LiRFYLlX9Dz1vWtulmzCb52EfXkfg0fEz\n"
	"xUxU2e4mZEmldxWfYI5WfYuK2LufsesBjTPQRhZ+4vW0BuaYD80QI6JlrdDv8LKr\n"
	"+wVSKXsxdctTW40DPuIjHrFPZRR9/jROPGEEi2IH5oI1zMw8LQm1O//je+FVeDaY\n"
	"xEwQ25N4eLUZ98wdpXABUK4yfenQ77jDp2tFYSPCatdxCU/SUipjxQAfxmaymUEI\n"
	"aW9qYu30VLnjPbgxU7vsWDBE0MyTahNvntCgXRy7MqwzFG4ViUCIE9WZmE/xfc9l\n"
	"PBuKAdcFQF6xcdUFinZP4iYJtspXySyjCvIq79ECgYEA4iWDA4xgSAqt4xrTY5fh\n"
	"1B5bYPcMg43iNHoAK/Y93VCy4l95O0gASs2dklqmIbTVb+/TznN83vhNX52/lLe0\n"
	"rbpl7rEUuASHpwZhL5IAIhoqGVO4rTxaf7YpwRlNIrO/0vQhlwmN0erXd4laBghZ\n"
	"0314ec54oBjQ9fY1tWVVGBsCgYEAxWS7/0G9cHZI98O8RoS7bXlERpS5QcKwCRVv\n"
	"8wJbmF/nKvU5y5BItmhebOL6cH/2swWi/pug0lhz8drJRLs+6JK9hLQN3wWf57Fv\n"
	"gPzKq/qj4gECXRDKkNTJxHyrlJ+ajrWe2tmDozRGyFQPpRRYGnXjZKRSLkm7+jY4\n"
	"szcosBkCgYBXPWVXPxX9dLE0BSs7JmJl8/gIZgWb0mZLHC1oyCuBbxozHeWkqtgC\n"
	"A2QgC3w/UIVuEzTAVej8Ewm2MyKu+ldnFZsxA3scqhKyqlFfipEmlrVa4+NAYSIA\n"
	"VoOxDFOnaXQ8qxUyMOtW6aOJZ6Ek5p/QaHzLcI00JZ6m4/5AJgE3tQKBgCWgCeWh\n"
	"1kY1hbsUaDLY4hD/6G+7sYRDY+KXX3tmm6bzwNCDZbzTh8idJEKFEU+YVKHTFTqK\n"
	"16DAk3kqRur+9gLG1bER0QMNw2kafTKM/OTDJbHSl2y94p6wsLTvPpVZxtAk9l6o\n"
	"z1qwgD13KHRC6HhCuFFasP95tob/BtfCT9MhAoGAMx1n0ErKwGrnpiM1Ggus2Nq1\n"
	"bt9Zl6Umr1VqpNTjbC9JVoGFqD4HIWPaRLinx1KWdh8m+xccDGtwTEo/ZEJ4jHYQ\n"
	"7AElmcIBtEjG4RgQvh2zl9kbtFBTOF0pJUU4O0k54Ysn9ObvJ4F37FCX+pVamEaR\n"
	"sg1hCnZ2ErV2iNsn5w8=\n"
	"-----END PRIVATE KEY-----\n";

static const char ra_cert_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIDRTCCAi2gAwIBAgIUfYGg/V5q4OXNohr48+xBolnp3BkwDQYJKoZIhvcNAQEL\n"
	"BQAwMTEvMC0GA1UEAwwmZnV6eiBSQSAodGhyb3ctYXdheSBrZXksIGZ1enppbmcg\n"
	"b25seSkwIBcNMjYxMTIzMjIzOTE3WhgPMjEyNjEwMzAyMjM5MTdaMDExLzAtBgNV\n"
	"BAMMJmZ1enogUkEgKHRocm93LWF3YXkga2V5LCBmdXp6aW5nIG9ubHkpMIIBIjAN\n"
	"BgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArl/ai8yM5G4L17JjRoDIVCgK0to4\n"
	"aiZXtqTUuXs90LV1P9bICVOTh+fddBSG46FRNETqcoNdKOhRJL/R2wPpTf2jGfnx\n"
	"Vp3q2LCV2k8HA0guC581YEA58rqFlC8xVeWD1J/NzE/LcSFlF5rVtee0ZQauCgRf\n"
	"nBbhH43q1rU79IHb5Uc6fFjpqDi2TfdcX5+oNxfIJGJ0NeKtEzzZOM9PPd2+ne6z\n"
	"yay+3uxVjxgAu04Yrpc0ciOHZ5SK04LOUHEZjpBpCgjZ0qyOEZ2197P54hUocgeI\n"
	"19hr9IRLx5AzJxyQ5rFFhBvHrrN4B/95EUvkomricjIybbqSjNS79xnqowIDAQAB\n"
	"o1MwUTAdBgNVHQ4EFgQUJoRgiuwO5tkJ82kr0JQjSTVeI94wHwYDVR0jBBgwFoAU\n"
	"JoRgiuwO5tkJ82kr0JQjSTVeI94wDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0B\n"
	"AQsFAAOCAQEABpMbXxqVbEd8+2VRxNK3Du/Jaf/0D84gDNS6p2G93gg1gwX2J3oR\n"
	"Lbx8+AepS6KsRYKAFRaZm3luRPRDoMlJwvSyULEpk3PJlhHqiV2GmpRBFVlhFKhV\n"
	"Hk7cxoaIq34ozRbe+9SlFI+MyghStAPZx1V9usIm7ZY+ggpH0obFIzd6FlykWtE1\n"
	"RcD5A5lPu/bDlhvEP5KeKt6U4aXOLQJoCj1+qRtnd4pz/2L/1lVqcqbv0Xdq/LGE\n"
	"Op90UrL68yv3bHO/eJppT/efvR0NQwCCLAdBreXT+uReSIy4RJ3Yrksu5Q4kEEri\n"
	"wdZyTzxrUZxmC2diDEGkamRcX57K3v3fhQ==\n"
	"-----END CERTIFICATE-----\n";

static EVP_PKEY *ra_key;
static X509 *ra_cert;

static void
load(void)
{
	BIO *b;

	if ((b = BIO_new_mem_buf(ra_key_pem, -1)) == NULL ||
	    (ra_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL)
		abort();
	BIO_free(b);
	if ((b = BIO_new_mem_buf(ra_cert_pem, -1)) == NULL ||
	    (ra_cert = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
		abort();
	BIO_free(b);
}

/* Open m's envelope with the RA's key, and read its challenge. */
static void
open_request(struct smime_scep_msg *m)
{
	struct smime_error err;
	int rc = smime_scep_open(m, ra_cert, ra_key, &err);

	if (rc == 0 && (m->type == SMIME_SCEP_PKCSREQ || m->type == SMIME_SCEP_RENEWALREQ) &&
	    (m->csr == NULL || m->csr_der == NULL))
		abort(); /* opened a request without its CSR */
	if (rc == 0 && m->csr != NULL) {
		char challenge[SMIME_SCEP_MAX_CHALLENGE + 1];

		(void)smime_scep_challenge(m->csr, challenge, sizeof(challenge), &err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_scep_msg m = { 0 }, fast = { 0 };
	struct smime_scep_caps caps;
	struct smime_error err;
	X509 *ca = NULL, *ra = NULL;
	int rc, rc_fast;

	if (ra_key == NULL)
		load();
	rc = smime_scep_read(data, size, &m, &err);
	if (rc == 0 && (!m.signature_ok || !smime_scep_can_reply(&m)))
		abort(); /* read without a verified signature or what a reply needs */
	/* The server's reading: the same answer, the same signer (its hash is
	 * of the octets received, the full reading's of a re-encoding, which
	 * differ when the certificate was sent in BER). */
	rc_fast = smime_scep_read_ex(data, size, SMIME_SCEP_ASSEMBLE, &fast, &err);
	if (rc_fast != rc || (rc == 0 && (X509_NAME_cmp(X509_get_issuer_name(fast.signer),
	    X509_get_issuer_name(m.signer)) != 0 || ASN1_INTEGER_cmp(
	    X509_get0_serialNumber(fast.signer), X509_get0_serialNumber(m.signer)) != 0 ||
	    EVP_PKEY_eq(X509_get0_pubkey(fast.signer), X509_get0_pubkey(m.signer)) != 1)))
		abort();
	if (rc == 0 && m.envelope != NULL) {
		open_request(&m);
		open_request(&fast);
		if ((m.csr == NULL) != (fast.csr == NULL) || (m.csr != NULL &&
		    (smime_scep_csr_verify(&m, &err) == 0) != (smime_scep_csr_verify(&fast,
		    &err) == 0)))
			abort(); /* the two readings disagree on the request */
	}
	smime_scep_msg_clear(&m);
	smime_scep_msg_clear(&fast);

	if (smime_scep_ca_certs(data, size, &ca, &ra, NULL, &err) == 0 &&
	    (ca == NULL || ra == NULL))
		abort();
	X509_free(ca);
	X509_free(ra);
	smime_scep_caps_parse((const char *)data, size, &caps);
	return 0;
}
