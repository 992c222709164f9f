/* libsmime: the whole public API. */
#ifndef SMIME_SMIME_H
#define SMIME_SMIME_H

#include <smime/error.h>
#include <smime/cert.h>
#include <smime/keystore.h>
#include <smime/message.h>
#include <smime/scep.h>

#define SMIME_VERSION "0.1.0"

#endif
