/* smimed: store_sqlite (being written) */
