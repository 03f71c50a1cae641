"""The image's own steps: first boot (micarray.txt, Imager's files, HATs), root growth, updates."""
