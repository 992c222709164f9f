/* smimed: signer (being written) */
