/* smime: see cli/main.c. */
