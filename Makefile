# dockbuild — make demo | make test | make build | make deps | make bench
SHELL := /bin/bash
SWIFT ?= swift
BIN := .build/debug/dockbuild
RELEASE_BIN := .build/release/dockbuild

# Debian packages the code links against and the tools the tests talk to.
DEPS_DEB := pkg-config libssl-dev zlib1g-dev libisal-dev libzstd-dev libarchive-dev \
	libcurl4-openssl-dev libseccomp-dev liblzma-dev libbz2-dev \
	docker-registry skopeo umoci runc busybox-static libarchive-tools oci-image-tool \
	jq curl tar gzip pigz zstd apache2-utils iproute2 iptables util-linux tmux libcrypt-dev \
	openssl wrk python3 xz-utils bzip2 hyperfine crun \
	buildah bc tini gcc libc6-dev qemu-user-static binfmt-support podman uidmap passt fuse-overlayfs \
	ceph-mon ceph-osd radosgw strace

.PHONY: deps build release test demo bench clean install install-files uninstall

deps:
	@missing=""; for p in $(DEPS_DEB); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null || \
		{ echo "make deps: apt-get failed; install these as root:$$missing" >&2; exit 1; }; \
	fi
# The foreign-binary build tests (Tests/BuildTests/ForeignRunTests.swift) fetch Debian's
# busybox-static:arm64 with apt-get download, which needs arm64 known to dpkg and apt.
	@dpkg --print-foreign-architectures | grep -qx arm64 || { \
		echo "make deps: adding arm64 to dpkg's architectures (for busybox-static:arm64 in the tests)"; \
		{ dpkg --add-architecture arm64 && apt-get update -q >/dev/null; } || \
		{ dpkg --remove-architecture arm64 2>/dev/null; apt-get update -q >/dev/null 2>&1; \
		  echo "make deps: could not add arm64 (dpkg --add-architecture arm64 && apt-get update); the foreign-binary tests will be skipped" >&2; }; }

# Rootless networking (pasta) opens /dev/net/tun as an ordinary user: Debian's udev makes it 0666,
# some containers create it 0600.
# fuse-overlayfs (the rootless fallback) opens /dev/fuse likewise.
	@for d in /dev/net/tun /dev/fuse; do \
		if [ -c $$d ] && [ "$$(stat -c %a $$d)" != 666 ]; then \
			echo "make deps: chmod 0666 $$d (as on a standard Debian; rootless dockbuild needs it)"; \
			chmod 0666 $$d || echo "make deps: could not chmod $$d; some rootless tests will fail" >&2; fi; done

# `run --init`'s PID 1, static C beside the dockbuild binary (SwiftPM cannot link it statically)
INIT_SRC := Sources/dockbuild-init/main.c

build: deps
	$(SWIFT) build
	cc -static -Os -Wall -Wextra -Werror -o .build/debug/dockbuild-init $(INIT_SRC)

release: deps
	$(SWIFT) build -c release --static-swift-stdlib
	cc -static -Os -Wall -Wextra -Werror -o .build/release/dockbuild-init $(INIT_SRC)

test: deps
	$(SWIFT) build --build-tests
	cc -static -Os -Wall -Wextra -Werror -o .build/debug/dockbuild-init $(INIT_SRC)
	$(SWIFT) test --skip-build --no-parallel

demo: deps build
	@bash fixtures/demo.sh $(BIN)

bench: deps release
	@for b in bench/*.sh; do echo "== $$b"; bash $$b || exit 1; done

# `make install` (PREFIX=/usr/local, DESTDIR for staging): the release binaries (the Swift runtime
# linked in), shell completions and man pages, all generated from the command definitions.
# `make install-files BUILD=.build/debug` installs an existing build without building.
PREFIX ?= /usr/local
BUILD ?= .build/release
BINDIR = $(DESTDIR)$(PREFIX)/bin
SHAREDIR = $(DESTDIR)$(PREFIX)/share
UNITDIR = $(DESTDIR)$(PREFIX)/lib/systemd/system

install: release install-files

install-files:
	@test -x $(BUILD)/dockbuild || { echo "make install: $(BUILD)/dockbuild is not built (make release)" >&2; exit 1; }
	install -d $(BINDIR) $(SHAREDIR)/man/man1 $(SHAREDIR)/bash-completion/completions \
		$(SHAREDIR)/zsh/site-functions $(SHAREDIR)/fish/vendor_completions.d $(UNITDIR)
	install -m 0755 $(BUILD)/dockbuild $(BINDIR)/dockbuild
	if [ -x $(BUILD)/dockbuild-runc ]; then install -m 0755 $(BUILD)/dockbuild-runc $(BINDIR)/dockbuild-runc; fi
	if [ -x $(BUILD)/dockbuild-init ]; then install -m 0755 $(BUILD)/dockbuild-init $(BINDIR)/dockbuild-init; fi
	$(BUILD)/dockbuild --generate-completion-script bash > $(SHAREDIR)/bash-completion/completions/dockbuild
	$(BUILD)/dockbuild --generate-completion-script zsh > $(SHAREDIR)/zsh/site-functions/_dockbuild
	$(BUILD)/dockbuild --generate-completion-script fish > $(SHAREDIR)/fish/vendor_completions.d/dockbuild.fish
	$(BUILD)/dockbuild --experimental-dump-help | python3 scripts/gen-man.py $(SHAREDIR)/man/man1 \
		"$$($(BUILD)/dockbuild --version 2>/dev/null | head -1)"
	sed 's|@BINDIR@|$(PREFIX)/bin|' contrib/systemd/dockbuild-start.service > $(UNITDIR)/dockbuild-start.service
	sed 's|@BINDIR@|$(PREFIX)/bin|' contrib/systemd/dockbuild-registry.service > $(UNITDIR)/dockbuild-registry.service
	chmod 0644 $(UNITDIR)/dockbuild-start.service $(UNITDIR)/dockbuild-registry.service

uninstall:
	rm -f $(BINDIR)/dockbuild $(BINDIR)/dockbuild-runc $(BINDIR)/dockbuild-init \
		$(SHAREDIR)/bash-completion/completions/dockbuild $(SHAREDIR)/zsh/site-functions/_dockbuild \
		$(SHAREDIR)/fish/vendor_completions.d/dockbuild.fish $(SHAREDIR)/man/man1/dockbuild.1 $(SHAREDIR)/man/man1/dockbuild-*.1 \
		$(UNITDIR)/dockbuild-start.service $(UNITDIR)/dockbuild-registry.service

clean:
	rm -rf .build
