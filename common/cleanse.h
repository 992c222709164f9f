/*
 * Freeing memory that may have held secrets (tokens, passwords, PKCS#12
 * files): jansson's allocations in smime admin and smimed, and the answers
 * smimed sends.
 */
#ifndef SMIME_CLEANSE_H
#define SMIME_CLEANSE_H

/* Wipe the whole allocation p (from malloc), then free it; NULL is fine. */
void cleansing_free(void *p);

#endif
