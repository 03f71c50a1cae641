"""First boot: the boot partition's file, its report and growing the root file system."""
