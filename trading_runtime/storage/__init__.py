"""PostgreSQL storage of the runtime: schema migrations and the write-behind writer."""
