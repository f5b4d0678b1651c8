"""Chapter 16's SSH and SFTP: the lab server and clients, on asyncssh, with a pinned host key."""
