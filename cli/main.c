/* smime: the command line. */
#include <stdio.h>
#include <smime/smime.h>

int
main(int argc, char **argv)
{
	(void)argc; (void)argv;
	printf("smime %s\n", SMIME_VERSION);
	return 0;
}
