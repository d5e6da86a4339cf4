# osvm build, test and demo. `make help` lists the targets.

GO          ?= go
BIN         := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Debian packages the build and the tests need. gcc and libc6-dev build the
# cgo code, the static escape battery and the test kernel; libseccomp-dev
# is the library osvmd compiles seccomp filters with; systemd, dbus and
# util-linux (nsenter, unshare) run the integration sandbox; python3 serves
# the demo's web component; bubblewrap is the benchmarks' reference
# sandbox; busybox-static fills the container tests' root file systems.
DEB_PACKAGES := gcc libc6-dev pkg-config libseccomp-dev systemd dbus util-linux python3 bubblewrap busybox-static
# Debian packages that make packages and its tests need besides those:
# binutils (objdump) reads the glibc versions the binaries need, rpm
# inspects the .rpm, lintian checks the .deb, and bash-completion and
# polkitd let the installation test use the completion and the polkit rule.
PACKAGING_DEB_PACKAGES := binutils rpm lintian bash-completion polkitd
DEB_PACKAGES += $(PACKAGING_DEB_PACKAGES)

.PHONY: help deps build test test-unit demo bench lint packages clean

help:
	@echo "make build   build osvmd, osvm, osvm-launch and osvm-exec into $(BIN)/"
	@echo "make test    unit and integration tests (integration needs root)"
	@echo "make demo    boot a private systemd and run examples/ under osvmd"
	@echo "make bench   benchmarks, printed as figures"
	@echo "make lint    go vet and staticcheck"
	@echo "make packages  deb and rpm packages in dist/ (VERSION=... sets the version)"

# deps installs the Debian packages that are missing. It needs root when
# something is missing, and does nothing otherwise.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:" $$missing >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# osvm-launch is built without cgo, as a static binary: it loads the seccomp
# program osvmd compiled, so it needs no libseccomp, and a static Go binary
# starts faster, which every component start pays for.
build: deps
	$(GO) build -o $(BIN)/ ./cmd/osvmd ./cmd/osvm
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/osvm-launch
	cmd/osvm-exec/build $(BIN)/osvm-exec

test-unit: deps
	$(GO) test ./...

# The integration tests run as part of ./...; as root with CI=true they
# fail instead of skipping when systemd or /dev/kvm is missing.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 ./...

demo: build
	./scripts/demo

bench: build
	./bench/run

lint: deps
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# packages builds dist/osvm_VERSION_amd64.deb and dist/osvm-VERSION.x86_64.rpm
# with nfpm (packaging/build-packages). VERSION defaults to one derived from
# git (packaging/version).
packages: deps
	GO=$(GO) ./packaging/build-packages dist

clean:
	rm -rf $(BIN) dist
