#include "shapes.hpp"

#include <cmath>

std::vector<Shape> make_shapes(int n) {
  std::vector<Shape> out;
  for (int i = 1; i <= n; ++i) {
    out.push_back({i % 2 == 0 ? "square" : "circle", i % 2 == 0 ? i * i : M_PI * i * i});
  }
  return out;
}
