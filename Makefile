# The README's two commands: `make run` and `make test`.
.PHONY: run test build libtorch reference pack

run: build
	./target/release/memscope

# Lints and formatting first: a warning or an unformatted file fails the test command. The
# comparisons with PyTorch and Pillow need the reference stack; the last line counts them.
test: libtorch reference
	cargo clippy --release --all-targets -- -D warnings
	cargo fmt --check
	scripts/check-summary --clear
	cargo test --release
	scripts/check-summary

build: libtorch
	cargo build --release

# Links a libtorch 2.9.0 as ./.libtorch ($LIBTORCH, the user cache, or the package index).
libtorch:
	scripts/fetch-libtorch

# Links the pinned reference stack (torch 2.9.0, torchvision, Pillow) as ./.reference.
reference:
	scripts/fetch-reference

# A portable pack for a machine with PyTorch but no Rust and no internet (docs/gpu-box.md):
# dist/memscope-VERSION-torchV[-cuXY]/ and its .tar.gz. `make pack TORCH=2.11.0` builds against
# the index's torch 2.11.0, `make pack PYTHON=/path/to/python` against that Python's torch.
pack:
	scripts/pack $(if $(TORCH),--torch $(TORCH)) $(if $(PYTHON),--python $(PYTHON))
