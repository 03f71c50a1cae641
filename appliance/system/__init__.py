"""System glue: systemd notification, mDNS, logging."""
