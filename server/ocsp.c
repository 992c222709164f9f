/* smimed: ocsp (being written) */
