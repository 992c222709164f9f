/* message: see include/smime/. */
#include <smime/smime.h>
