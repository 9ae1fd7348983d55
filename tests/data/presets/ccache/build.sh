#!/bin/sh
# Compiles each file through ccache, relative paths and no debug info (so the cwd, which
# differs from machine to machine, is not in ccache's hash), then links and runs.
set -eu
mkdir -p out
for f in make total describe main; do
  ccache c++ -std=c++17 -O1 -c "src/$f.cpp" -o "out/$f.o"
done
c++ out/*.o -o out/shapes
./out/shapes
