"""The image's own steps: first boot (micarray.txt, Raspberry Pi Imager's files, HATs), its report, root growth, updates."""
