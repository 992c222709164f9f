/* keystore: see include/smime/. */
#include <smime/smime.h>
