# The SD-card image for Raspberry Pi 3, 4 and Zero 2 W (docs/image.md).
# Included from the Makefile. `make image-test` builds the image and boots it
# in QEMU; it takes long (the first run builds the emulated base, 25-40
# minutes): it is run by developers, not by `make test` or every CI run.

IMAGE_APT_PACKAGES := mmdebstrap qemu-user-static binfmt-support arch-test \
	qemu-system-arm dosfstools mtools e2fsprogs fdisk xz-utils \
	openssh-client device-tree-compiler
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
IMAGE_NAME ?= micarray-$(IMAGE_VERSION)-arm64
IMAGE_APT_STAMP := image/cache/.apt-stamp

.PHONY: image image-test image-clean

$(IMAGE_APT_STAMP):
	@mkdir -p image/cache
	@missing=""; for p in $(IMAGE_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the image build:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi
	@touch $@

## make image: image/out/$(IMAGE_NAME).img.xz and .sha256
image: deps $(IMAGE_APT_STAMP)
	$(SUDO) env IMAGE_NAME=$(IMAGE_NAME) HOST_PY=$(abspath $(BIN))/python \
		HOST_PIP=$(abspath $(BIN))/pip image/build-image.sh

## make image-test: build (no xz), boot in qemu-system-aarch64, check it end to end
image-test: deps $(IMAGE_APT_STAMP)
	$(SUDO) env IMAGE_NAME=$(IMAGE_NAME) NO_XZ=1 HOST_PY=$(abspath $(BIN))/python \
		HOST_PIP=$(abspath $(BIN))/pip image/build-image.sh
	$(SUDO) $(BIN)/python image/image_test.py image/out/$(IMAGE_NAME).img

# Keeps the cached base root file system (25 minutes to rebuild).
image-clean:
	$(SUDO) rm -rf image/out image/cache/work image/cache/rootfs-*.tar image/cache/test
