#pragma once

#include <string>
#include <vector>

struct Shape {
  std::string name;
  double area;
};

std::vector<Shape> make_shapes(int n);
double total_area(const std::vector<Shape>& shapes);
std::string describe(const std::vector<Shape>& shapes);
