/* cert: see include/smime/. */
#include <smime/smime.h>
