"""Database side: the embedded SecantusDB server and MongoDB connections."""
