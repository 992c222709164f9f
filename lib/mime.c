/* mime: see include/smime/. */
#include <smime/smime.h>
