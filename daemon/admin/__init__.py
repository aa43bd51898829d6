"""Commands about the install rather than the messages: the CLI, the doctor, the systemd unit,
and finding the daemon that runs."""
