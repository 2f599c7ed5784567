"""Reference TCP servers (fork per connection, thread per connection) that pass the kit."""
