#include "shapes.hpp"

#include <numeric>

double total_area(const std::vector<Shape>& shapes) {
  return std::accumulate(shapes.begin(), shapes.end(), 0.0,
                         [](double sum, const Shape& s) { return sum + s.area; });
}
