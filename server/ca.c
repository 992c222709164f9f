/* smimed: ca (being written) */
