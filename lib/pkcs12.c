/* pkcs12: see include/smime/. */
#include <smime/smime.h>
