/* bag: see include/smime/cert.h. */
#include <smime/smime.h>
