#!/bin/bash
#
# An example job: builds a toolchain into $HOME once per deps.lock, then compiles 64
# C files into target/. Both are persisted, so the second pristine machine skips the
# work whose outputs ephemera put back.
#
#: name = "demo-build"
#: variety = "basic"
#: target = "debian-12"
#: output_rules = ["/work/demo/target/app"]
#:
#: [[persist]]
#: name = "toolchain"
#: rules = ["~/.cache/demo-toolchain"]
#: epoch = 1
#: key_files = ["deps.lock"]
#:
#: [[persist]]
#: name = "target"
#: rules = [
#:	"target/**/*",
#:	"!target/**/*.tmp",
#:	"=target/app",
#: ]
#: epoch = 1
#: cache_key = "cc"
#: restore_keys = ["cc"]

set -o errexit
set -o pipefail

tc="$HOME/.cache/demo-toolchain"
if [[ -x "$tc/bin/gen" ]]; then
	echo "job: toolchain already present, skipping its build"
else
	echo "job: building the toolchain"
	mkdir -p "$tc/bin" "$tc/src"
	cat >"$tc/src/gen.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	int n = atoi(argv[1]);
	printf("#include <stdint.h>\nuint64_t f%d(uint64_t x) {\n", n);
	for (int i = 0; i < 300; i++)
		printf("\tx = x * %dULL + (x >> %d) + %d;\n", 2 * i + 3, i % 29 + 1, n ^ i);
	printf("\treturn x;\n}\n");
	return 0;
}
C
	cc -O2 -o "$tc/bin/gen" "$tc/src/gen.c"
fi

mkdir -p src target/obj
for i in $(seq 1 64); do
	[[ -f "src/f$i.c" ]] || "$tc/bin/gen" "$i" >"src/f$i.c"
	if [[ ! -f "target/obj/f$i.o" ]]; then
		echo "target/obj/f$i.o"
	fi
done | xargs -r -P 2 -I{} sh -c 'o={}; n=${o#target/obj/}; cc -O2 -c "src/${n%.o}.c" -o "$o.tmp" && mv "$o.tmp" "$o"'
echo "job: compiled what was missing"

if [[ -x target/app ]]; then
	echo "job: target/app is up to date"
else
{
	echo '#include <stdio.h>'
	echo '#include <stdint.h>'
	for i in $(seq 1 64); do echo "uint64_t f$i(uint64_t);"; done
	echo 'int main(void) { uint64_t x = 1;'
	for i in $(seq 1 64); do echo "x = f$i(x);"; done
	echo 'printf("%llu\n", (unsigned long long)x); return 0; }'
} >target/main.c
cc -O0 -o target/app target/main.c target/obj/*.o
fi
echo "job: app says $(./target/app)"
