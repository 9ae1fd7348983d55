#include "shapes.hpp"

#include <cstdio>

int main() {
  auto shapes = make_shapes(6);
  std::printf("%s%.1f\n", describe(shapes).c_str(), total_area(shapes));
}
