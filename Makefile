# The README's two commands: `make run` and `make test`.
.PHONY: run test build libtorch

run: build
	./target/release/memscope

# Lints and formatting first: a warning or an unformatted file fails the test command.
test: libtorch
	cargo clippy --release --all-targets -- -D warnings
	cargo fmt --check
	cargo test --release

build: libtorch
	cargo build --release

# Links a libtorch 2.9.0 as ./.libtorch ($LIBTORCH, the user cache, or the package index).
libtorch:
	scripts/fetch-libtorch
