// Test tool: TopoLM's spatial loss (train/spatial_loss.hpp) and its gradient on given activations,
// for the check against an independent torch implementation (tests/model/test_topolm.py).
// Usage: spatial_loss_dump IN.json OUT.json
// IN.json: {"activations": [[...], ...] (tokens x units), "side": S, "cells": [...] (per unit),
//           "windows": [[top, left, size], ...], optional "split": K (moments formed over K token blocks
//           and summed, as ranks do)}; or several sheets: "sheets": [{"side", "cells"}, ...],
//           activations [sheets][tokens][units] and windows [top, left, size, sheet].
// OUT.json: {"loss": mean over the windows' SL, "gradient": d loss / d activations, "units": per window}.
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "spatial/sheet.hpp"
#include "train/spatial_loss.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: spatial_loss_dump IN.json OUT.json\n";
    return 2;
  }
  const auto in = nlohmann::json::parse(std::ifstream(argv[1]));
  // One sheet ("side", "cells", activations [tokens][units]) or several ("sheets": [{"side", "cells"}],
  // activations [sheets][tokens][units], a window's 4th entry its sheet).
  std::vector<lmtopo::spatial::Sheet> sheets;
  if (in.contains("sheets"))
    for (const auto& sh : in["sheets"]) sheets.push_back(lmtopo::spatial::sheet_from_cells(sh["side"].get<int>(), sh["cells"].get<std::vector<int>>()));
  else
    sheets.push_back(lmtopo::spatial::sheet_from_cells(in["side"].get<int>(), in["cells"].get<std::vector<int>>()));
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> collect = [&](const nlohmann::json& v) {
    if (v.is_array())
      for (const auto& x : v) collect(x);
    else
      flat.push_back(v.get<double>());
  };
  collect(in["activations"]);
  const auto S = static_cast<std::int64_t>(sheets.size()), T = static_cast<std::int64_t>(in.contains("sheets") ? in["activations"][0].size() : in["activations"].size());
  // "dtype": "float32" runs the moments in float32 as training does (the loss stays float64).
  const auto dtype = in.value("dtype", std::string("float64")) == "float32" ? torch::kFloat32 : torch::kFloat64;
  torch::Tensor acts = torch::tensor(flat, torch::kFloat64).reshape({S, T, -1}).to(dtype).requires_grad_(true);
  const int split = in.value("split", 1);
  std::vector<std::vector<int>> units;
  std::vector<std::int64_t> source;
  for (const auto& w : in["windows"]) {
    source.push_back(w.size() > 3 ? w[3].get<std::int64_t>() : 0);
    units.push_back(lmtopo::spatial::units_in_window(sheets.at(static_cast<std::size_t>(source.back())), w[0], w[1], w[2]));
  }
  const auto batch = lmtopo::train::batch_neighbourhoods(sheets, units, source);
  torch::Tensor moments;
  for (const auto& part : acts.chunk(split, 1)) {
    const auto m = lmtopo::train::neighbourhood_moments(part, batch);
    moments = moments.defined() ? moments + m : m;
  }
  torch::Tensor loss = lmtopo::train::neighbourhood_losses(moments, batch).sum();
  nlohmann::json units_json = units;
  loss = loss / static_cast<double>(in["windows"].size());
  loss.backward();
  const torch::Tensor g = acts.grad().to(torch::kFloat64).contiguous();
  std::vector<double> grad(g.data_ptr<double>(), g.data_ptr<double>() + g.numel());
  std::ofstream(argv[2]) << nlohmann::json{{"loss", loss.item<double>()}, {"gradient", grad}, {"units", units_json}}.dump();
  return 0;
}
