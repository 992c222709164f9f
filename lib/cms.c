/* cms: see include/smime/. */
#include <smime/smime.h>
