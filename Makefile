# SPDX-License-Identifier: MIT
# vram - build, install and test.
#
#   make                      libvram (shared + static), the vram command, tests, benches
#   make SAN=asan             the same under AddressSanitizer + UBSan, in build-asan/
#   make SAN=tsan             the same under ThreadSanitizer, in build-tsan/
#   make check                build and run the test suite (tests/run.sh)
#   make gpu-bundle           build/gpu-bundle: run-all.sh and all it needs, for a bare GPU machine
#   make install PREFIX=DIR   bin/ LIBDIR/ include/ LIBDIR/pkgconfig/ share/vram/profiles/ ...
#   make CFLAGS=-O0 WERROR=1  the builder's CPPFLAGS/CFLAGS/LDFLAGS are honoured
#                             (dpkg-buildflags); WERROR=1 makes warnings errors
#   DESTDIR, PREFIX, BINDIR, LIBDIR (multiarch: PREFIX/lib/x86_64-linux-gnu),
#   INCLUDEDIR, DATADIR, MANDIR, SYSTEMDUNITDIR name where install puts things.
#
# Every .c file under src/<module>/ belongs to libvram except src/cli/ (the
# command).  Every tests/<module>/test_*.c is one test binary.

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

# Where things go (GNU names; DESTDIR is prepended at install time only).
# LIBDIR is Debian's multiarch folder (lib/x86_64-linux-gnu) where the
# toolchain names one.
PREFIX  ?= /usr/local
MULTIARCH := $(or $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null),$(shell $(CC) -print-multiarch 2>/dev/null))
BINDIR  ?= $(PREFIX)/bin
LIBDIR  ?= $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# systemd looks for units of a /usr/local install in /usr/local/lib/systemd.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
# GNU's install variables; shared libraries and plugins are data (0644),
# as Debian policy wants: only programs are executable.
INSTALL ?= install
INSTALL_PROGRAM ?= $(INSTALL)
INSTALL_DATA ?= $(INSTALL) -m 644
CC      ?= cc
SAN     ?=

ifeq ($(SAN),)
  BUILD   ?= build
  SANFLAGS :=
else ifeq ($(SAN),asan)
  BUILD   ?= build-asan
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SAN),tsan)
  BUILD   ?= build-tsan
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  $(error SAN must be empty, asan or tsan, not '$(SAN)')
endif

# CPPFLAGS, CFLAGS and LDFLAGS are the builder's (make CFLAGS=-O0, or
# dpkg-buildflags' hardening): they come last and replace nothing the
# build needs, which lives in the VRAM_* variables.  OPT is the default
# CFLAGS.  WERROR=1 turns warnings into errors (scripts/test.sh, CI).
OPT      ?= -O2 -g
CFLAGS   ?= $(OPT)
WERROR   ?=
WARN     := -Wall -Wextra $(if $(filter-out 0,$(WERROR)),-Werror) -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
# Defines every compile of the library's sources needs (also the fuzzers').
# No source path is compiled in (reproducible builds): the shipped profiles
# are found from where the program runs (plan/library.c), the build tree's
# through $(BUILD)/share/vram/profiles, and debug info names files
# relative to this folder.
DEFS     := -DVRAM_VERSION_STRING='"$(VERSION)"' -DVRAM_DATA_DIR='"$(DATADIR)/vram"' \
            -DVRAM_PKGLIBDIR='"$(LIBDIR)/vram"' -DVRAM_MULTIARCH='"$(MULTIARCH)"'
# Debian-packaged libraries libvram links, by pkg-config name.
LIB_PKGS := inih
LIB_EXTRA_LIBS := $(if $(strip $(LIB_PKGS)),$(shell pkg-config --libs $(LIB_PKGS)))
# Headers only: dlopened where they are used, so that no client command loads
# them: libmicrohttpd and its TLS chain when the daemon's HTTP server starts
# (src/daemon/http.c), SQLite when the job store or the history opens
# (src/core/sqlite.c).  Tests and benches call SQLite themselves.
DLOPEN_PKGS := libmicrohttpd sqlite3
TEST_EXTRA_LIBS := $(LIB_EXTRA_LIBS) $(shell pkg-config --libs sqlite3)
VRAM_CPPFLAGS := -Iinclude -Isrc -D_GNU_SOURCE -DVRAM_BUILDING_LIBRARY $(DEFS) \
            $(if $(strip $(LIB_PKGS)),$(shell pkg-config --cflags $(LIB_PKGS))) \
            $(shell pkg-config --cflags $(DLOPEN_PKGS))
# -fno-math-errno: nothing reads errno after a math call, and without it
# sqrt and lrintf are calls into libm, which the command then loads at every
# start (bench/tsp's CLI start row; tests/cli/test_client_libs.sh).
VRAM_CFLAGS := -std=c11 $(WARN) -fPIC -fvisibility=hidden -fno-math-errno $(SANFLAGS) \
            -ffile-prefix-map=$(CURDIR)=.
VRAM_LDFLAGS := $(SANFLAGS)
# What each compile and link line uses: ours first, the builder's after.
ALL_CFLAGS = $(VRAM_CPPFLAGS) $(CPPFLAGS) $(VRAM_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(VRAM_LDFLAGS) $(CFLAGS) $(LDFLAGS)
LIBS     := -ldl -lpthread -lm

LIB_SRC   := $(sort $(wildcard src/core/*.c src/device/*.c src/monitor/*.c src/plan/*.c \
                               src/sched/*.c src/wire/*.c src/runner/*.c src/daemon/*.c))
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/*/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
STUB_SRC  := $(sort $(wildcard tests/stubs/*.c))
HELPER_SRC:= $(sort $(wildcard tests/helpers/*.c))

# The dashboard's files, embedded into libvram by tools/embed.c (see below).
WEB_FILES := $(sort $(wildcard web/*))
WEB_GEN   := $(BUILD)/gen/web_assets.c
EMBED     := $(BUILD)/tools/embed

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
HELPER_BIN:= $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

SONAME    := libvram.so.$(VERSION_MAJOR)
SHARED    := $(BUILD)/lib/libvram.so.$(VERSION)
STATIC    := $(BUILD)/lib/libvram.a
CLI       := $(BUILD)/bin/vram
STUB_NVML := $(BUILD)/stubs/libnvidia-ml.so.1 $(BUILD)/stubs-old/libnvidia-ml.so.1 \
             $(BUILD)/stubs-broken/libnvidia-ml.so.1
# The enforcement layer, the stub driver it is tested on, and the programs
# that reach the stub each way real software does (rules further down).
SHIM_SRC  := $(sort $(wildcard src/shim/*.c))
SHIM_OBJ  := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
SHIM      := $(BUILD)/lib/libvram_shim.so
STUB_CUDA := $(BUILD)/stubs/cuda/libcuda.so.1
SHIM_PROG_SRC := $(sort $(wildcard tests/shim/prog_*.c))
SHIM_PROG := $(SHIM_PROG_SRC:tests/shim/prog_%.c=$(BUILD)/tests/shim/prog/%)
SHIM_PLUGIN := $(BUILD)/tests/shim/prog/libplugin.so

# V=1 shows the whole command lines.
Q := $(if $(V),,@)

.PHONY: all lib cli docs tests bench check install uninstall clean fuzz shim
all: lib cli shim docs tests bench

lib: $(SHARED) $(STATIC) $(BUILD)/share/vram/profiles
# The build tree's programs find the shipped profiles the way installed ones
# do, in share/vram/profiles above them (plan/library.c): a link here.
$(BUILD)/share/vram/profiles:
	@mkdir -p $(dir $@)
	$(Q)ln -sfn $(CURDIR)/profiles $@
cli: $(CLI)
tests: $(TEST_BIN) $(STUB_NVML) $(HELPER_BIN) $(STUB_CUDA) $(SHIM_PROG) $(SHIM_PLUGIN)
bench: $(BENCH_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The generator runs on the build machine, so it is built without sanitizers.
$(EMBED): tools/embed.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TOOL    $@")
	$(Q)$(CC) -std=c11 -O2 $(WARN) -o $@ $<

$(WEB_GEN): $(EMBED) $(WEB_FILES)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  EMBED   $@")
	$(Q)$(EMBED) $@ web $(notdir $(WEB_FILES))

$(BUILD)/obj/gen/web_assets.o: $(WEB_GEN)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined $(ALL_LDFLAGS) -o $@ $^ $(LIB_EXTRA_LIBS) $(LIBS)
	$(Q)ln -sf libvram.so.$(VERSION) $(BUILD)/lib/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BUILD)/lib/libvram.so

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  AR      $@")
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

# The command links the static library, and inih statically too where its
# archive is installed (Debian's -dev package ships it): finding and
# relocating shared libraries was a third of a command's start (bench/tsp
# compares it with task-spooler's).  SQLite is dlopened by the commands that
# open a store (src/core/sqlite.c), not linked.
comma := ,
CLI_STATIC_LIBS := $(foreach l,inih,$(if $(filter /%,$(shell $(CC) -print-file-name=lib$(l).a)),-l$(l)))
CLI_LIBS  := $(if $(CLI_STATIC_LIBS),-Wl$(comma)-Bstatic $(CLI_STATIC_LIBS) -Wl$(comma)-Bdynamic) \
             $(filter-out $(CLI_STATIC_LIBS),$(LIB_EXTRA_LIBS))
$(CLI): $(CLI_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) -Wl,--as-needed $(CLI_LIBS) $(LIBS)

# Man pages and shell completion, written by the command from the tables its
# --help prints (src/cli/docgen.c), so the three never drift apart.
MAN_STAMP := $(BUILD)/share/man/.stamp
BASH_COMP := $(BUILD)/share/bash-completion/completions/vram
ZSH_COMP  := $(BUILD)/share/zsh/vendor-completions/_vram
docs: $(MAN_STAMP) $(BASH_COMP) $(ZSH_COMP)
$(MAN_STAMP): $(CLI)
	@mkdir -p $(BUILD)/share/man/man1 $(BUILD)/share/man/man8
	@$(if $(V),,echo "  MAN     $(BUILD)/share/man")
	$(Q)rm -f $(BUILD)/share/man/man1/*.1 $(BUILD)/share/man/man8/*.8
	$(Q)$(CLI) --generate man-all $(BUILD)/share/man
	$(Q)touch $@
$(BASH_COMP): $(CLI)
	@mkdir -p $(dir $@)
	$(Q)$(CLI) --generate bash >$@
$(ZSH_COMP): $(CLI)
	@mkdir -p $(dir $@)
	$(Q)$(CLI) --generate zsh >$@

# Tests and benches link the static library so that they see vram__ internals.
# Tests print into fixed buffers on purpose; gcc's truncation warning (which
# clang does not have) is off for them.
TEST_WARN := $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
$(BUILD)/tests/%: tests/%.c $(STATIC) tests/test.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(TEST_WARN) -Itests -MMD -MP -o $@ $< $(STATIC) $(TEST_EXTRA_LIBS) $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  BENCH   $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Ibench -MMD -MP -o $@ $< $(STATIC) $(TEST_EXTRA_LIBS) $(ALL_LDFLAGS) $(LIBS)

# Stand-ins for NVIDIA's libnvidia-ml.so.1, scripted by the tests: a recent
# driver, an old one (v1 calls only) and a broken one (a required call missing).
STUB_FLAGS_stubs :=
STUB_FLAGS_stubs-old := -DSTUB_OLD_DRIVER
STUB_FLAGS_stubs-broken := -DSTUB_BROKEN
$(BUILD)/%/libnvidia-ml.so.1: tests/stubs/nvml_stub.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  STUB    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(STUB_FLAGS_$*) -shared -Wl,-soname,libnvidia-ml.so.1 -o $@ $< $(ALL_LDFLAGS)

# The enforcement layer (src/shim/): its own shared library, never part of
# libvram, exporting only the entry points it interposes.  LD_PRELOAD puts
# it into jobs, so it links nothing but libc (and libdl, libpthread);
# -Bsymbolic keeps the addresses of its own hooks its own, even when it is
# loaded after a driver that exports the same names (bench/shim does).
# It keeps the toolchain's hardening (RELRO, code apart from data): every
# process of a job loads it, and linking it with -z norelro and -z
# noseparate-code would start each about 20 us sooner on our 2-core VM
# (build/bench/shim), but leave its GOT and tables writable, and its data
# executable, in jobs that may serve the network; a packager's LDFLAGS
# would undo it anyway.
shim: $(SHIM)
$(SHIM): $(SHIM_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libvram_shim.so -Wl,-Bsymbolic -Wl,--no-undefined $(ALL_LDFLAGS) -o $@ $^ -ldl -lpthread

# A stand-in libcuda.so.1 for the shim's tests (tests/stubs/cuda_stub.c says
# what it does), and the programs that reach it each way real software does.
$(STUB_CUDA): tests/stubs/cuda_stub.c tests/stubs/cuda_stub.map src/shim/cuda_types.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  STUB    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -shared -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic \
		-Wl,--version-script=tests/stubs/cuda_stub.map -o $@ $< $(ALL_LDFLAGS)
	$(Q)ln -sf libcuda.so.1 $(dir $@)libcuda.so
$(BUILD)/tests/shim/prog/%: tests/shim/prog_%.c $(STUB_CUDA) $(STATIC) tests/shim/prog.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  PROG    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -MMD -MP -o $@ $< $(if $(findstring linked,$*),-L$(dir $(STUB_CUDA)) -lcuda -Wl$(comma)-rpath$(comma)'$$ORIGIN/../../../stubs/cuda') \
	    $(STATIC) $(LIB_EXTRA_LIBS) $(ALL_LDFLAGS) $(LIBS)
comma := ,
# A library linked against the stub driver, which prog/hostile dlopens.
$(SHIM_PLUGIN): tests/shim/plugin.c $(STUB_CUDA)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  PLUGIN  $@")
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< -L$(dir $(STUB_CUDA)) -lcuda \
	    -Wl,-rpath,'$$ORIGIN/../../../stubs/cuda' $(ALL_LDFLAGS)

# The Slurm plugin (src/slurm/): built when spank.h is there (Debian's
# libslurm-dev), with libvram linked in and kept inside (slurmstepd and srun
# see only the SPANK symbols); not in sanitizer builds, which Slurm's
# processes could not load.
SLURM_INCLUDE ?= /usr/include
SPANK_H   := $(wildcard $(SLURM_INCLUDE)/slurm/spank.h)
SPANK_SO  := $(BUILD)/lib/slurm/vram_spank.so
.PHONY: slurm install-slurm
all: slurm
# What a CUDA program in a Slurm task sees (tests/slurm/test_slurm.sh).
tests: $(BUILD)/tests/slurm/cudaprobe
ifeq ($(SAN),)
ifneq ($(SPANK_H),)
slurm: $(SPANK_SO)
$(SPANK_SO): src/slurm/vram_spank.c $(STATIC) include/vram.h
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  SPANK   $@")
	$(Q)$(CC) $(ALL_CFLAGS) -fvisibility=default -I$(SLURM_INCLUDE) \
	    -shared -Wl,--exclude-libs,ALL -o $@ $< $(STATIC) $(LIB_EXTRA_LIBS) $(ALL_LDFLAGS) $(LIBS)
install-slurm: $(SPANK_SO)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)/vram/slurm
	$(INSTALL_DATA) $(SPANK_SO) $(DESTDIR)$(LIBDIR)/vram/slurm/
else
slurm:
	@echo "  SKIP    the Slurm plugin: $(SLURM_INCLUDE)/slurm/spank.h is missing (Debian: libslurm-dev)"
install-slurm: slurm
endif
else
slurm:
install-slurm:
endif
install: install-slurm

# libFuzzer targets (clang): tests/fuzz/fuzz_*.c over the library's sources,
# compiled once for every target (coverage and sanitizers in each object),
# then linked with each target's own file.
FUZZ_CC     ?= clang
FUZZ_CFLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -DVRAM_BUILDING_LIBRARY $(DEFS) -Iinclude -Isrc
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_OBJ    := $(patsubst %.c,build-fuzz/obj/%.o,$(LIB_SRC) $(WEB_GEN))
fuzz: $(FUZZ_BIN)
build-fuzz/obj/%.o: %.c $(WEB_GEN) $(wildcard src/*/*.h) include/vram.h
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
build-fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $< $(FUZZ_OBJ) -o $@ \
	    $(LIB_EXTRA_LIBS) $(LIBS)

check: all
	tests/run.sh $(BUILD)

# vram.pc is written at install time: it names the install folders.  It
# carries no rpath: LIBDIR is on the loader's path (ldconfig) or the user
# sets LD_LIBRARY_PATH, as Debian policy wants.
install: lib cli docs
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(INCLUDEDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(LIB_EXTRA_LIBS) $(LIBS))|' vram.pc.in \
	    > $(DESTDIR)$(PKGCONFIGDIR)/vram.pc
	$(INSTALL_PROGRAM) $(CLI) $(DESTDIR)$(BINDIR)/vram
	ln -sf vram $(DESTDIR)$(BINDIR)/vramd
	$(INSTALL_DATA) $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libvram.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libvram.so
	$(INSTALL_DATA) $(STATIC) $(DESTDIR)$(LIBDIR)/
	$(INSTALL_DATA) include/vram.h $(DESTDIR)$(INCLUDEDIR)/
	$(INSTALL) -d $(DESTDIR)$(DATADIR)/vram/profiles
	$(INSTALL_DATA) profiles/*.ini $(DESTDIR)$(DATADIR)/vram/profiles/
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions \
	    $(DESTDIR)$(DATADIR)/zsh/vendor-completions
	$(INSTALL_DATA) $(BUILD)/share/man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL_DATA) $(BUILD)/share/man/man8/*.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL_DATA) $(BASH_COMP) $(DESTDIR)$(DATADIR)/bash-completion/completions/vram
	ln -sf vram $(DESTDIR)$(DATADIR)/bash-completion/completions/vramd
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|@BINDIR@|$(BINDIR)|' dist/systemd/vramd.service.in >$(DESTDIR)$(SYSTEMDUNITDIR)/vramd.service
	$(INSTALL_DATA) dist/systemd/vramd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(INSTALL_DATA) $(ZSH_COMP) $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_vram

# The Python binding (python/vram, pure Python over libvram.so.0), with the
# dist-info importlib.metadata reads; Debian's folders: dist-packages, the
# version-less one for PREFIX=/usr.  PYTHONDIR= (empty) leaves it out.
PYTHON ?= python3
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/python3/dist-packages,$(if $(PYTHON_VERSION),$(PREFIX)/lib/python$(PYTHON_VERSION)/dist-packages))
PY_FILES := $(sort $(wildcard python/vram/*.py)) python/vram/py.typed
install: install-python
.PHONY: install-python
install-python:
ifneq ($(PYTHONDIR),)
	$(INSTALL) -d $(DESTDIR)$(PYTHONDIR)/vram $(DESTDIR)$(PYTHONDIR)/vram-$(VERSION).dist-info
	$(INSTALL_DATA) $(PY_FILES) $(DESTDIR)$(PYTHONDIR)/vram/
	printf 'Metadata-Version: 2.1\nName: vram\nVersion: %s\nSummary: %s\nLicense: MIT\nRequires-Python: >=3.9\n' \
	    '$(VERSION)' 'Keeps AI video generation inside the GPU memory it has' \
	    >$(DESTDIR)$(PYTHONDIR)/vram-$(VERSION).dist-info/METADATA
	echo make >$(DESTDIR)$(PYTHONDIR)/vram-$(VERSION).dist-info/INSTALLER
else
	@echo "  SKIP    the Python package: PYTHONDIR is empty (no $(PYTHON)?)"
endif

# The shim goes where vram run looks for it: $(LIBDIR)/vram/.
install: install-shim
.PHONY: install-shim
install-shim: $(SHIM)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)/vram
	$(INSTALL_DATA) $(SHIM) $(DESTDIR)$(LIBDIR)/vram/libvram_shim.so

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vram $(DESTDIR)$(BINDIR)/vramd $(DESTDIR)$(LIBDIR)/libvram.* \
	      $(DESTDIR)$(INCLUDEDIR)/vram.h $(DESTDIR)$(PKGCONFIGDIR)/vram.pc
	rm -rf $(DESTDIR)$(DATADIR)/vram $(DESTDIR)$(LIBDIR)/vram
	$(if $(PYTHONDIR),rm -rf $(DESTDIR)$(PYTHONDIR)/vram $(DESTDIR)$(PYTHONDIR)/vram-$(VERSION).dist-info)
	rm -f $(DESTDIR)$(MANDIR)/man1/vram.1 $(DESTDIR)$(MANDIR)/man1/vram-*.1 \
	      $(DESTDIR)$(MANDIR)/man8/vramd.8 \
	      $(DESTDIR)$(DATADIR)/bash-completion/completions/vram \
	      $(DESTDIR)$(DATADIR)/bash-completion/completions/vramd \
	      $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_vram \
	      $(DESTDIR)$(SYSTEMDUNITDIR)/vramd.service $(DESTDIR)$(SYSTEMDUNITDIR)/vramd.socket

# One folder that runs tests/gpu/ and the benches on a bare GPU machine
# (scripts/gpu-bundle.sh): programs, libvram and every library they need.
.PHONY: gpu-bundle
gpu-bundle: all
	scripts/gpu-bundle.sh $(BUILD) $(BUILD)/gpu-bundle

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
