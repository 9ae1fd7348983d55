#include "shapes.hpp"

#include <map>
#include <sstream>

std::string describe(const std::vector<Shape>& shapes) {
  std::map<std::string, int> counts;
  for (const auto& s : shapes) {
    ++counts[s.name];
  }
  std::ostringstream out;
  for (const auto& [name, n] : counts) {
    out << n << " " << name << (n == 1 ? "" : "s") << "; ";
  }
  return out.str();
}
