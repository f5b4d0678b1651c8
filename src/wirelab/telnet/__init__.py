"""Chapter 16's Telnet: the lab server (telnetlib3) and a login client with negotiation."""
