// Test tool: TopoLM's spatial loss (train/spatial_loss.hpp) and its gradient on given activations,
// for the check against an independent torch implementation (tests/model/test_topolm.py).
// Usage: spatial_loss_dump IN.json OUT.json
// IN.json: {"activations": [[...], ...] (tokens x units), "side": S, "cells": [...] (per unit),
//           "windows": [[top, left, size], ...], optional "split": K (moments formed over K row blocks
//           and summed, as ranks do)}.
// OUT.json: {"loss": mean over the windows' SL, "gradient": d loss / d activations, "units": per window}.
#include <fstream>
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
  const auto rows = in["activations"].get<std::vector<std::vector<double>>>();
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  torch::Tensor acts = torch::tensor(flat, torch::kFloat64).reshape({static_cast<std::int64_t>(rows.size()), -1}).requires_grad_(true);
  const auto sheet = lmtopo::spatial::sheet_from_cells(in["side"].get<int>(), in["cells"].get<std::vector<int>>());
  const int split = in.value("split", 1);
  torch::Tensor loss = torch::zeros({}, torch::kFloat64);
  nlohmann::json units = nlohmann::json::array();
  for (const auto& w : in["windows"]) {
    const auto n = lmtopo::train::make_neighbourhood(sheet, lmtopo::spatial::units_in_window(sheet, w[0], w[1], w[2]));
    units.push_back(n.units);
    torch::Tensor moments = torch::zeros({static_cast<std::int64_t>(n.units.size() * (n.units.size() + 1) + 1)}, torch::kFloat64);
    for (const auto& part : acts.chunk(split, 0)) moments = moments + lmtopo::train::neighbourhood_moments(part, n);
    loss = loss + lmtopo::train::neighbourhood_loss(moments, n);
  }
  loss = loss / static_cast<double>(in["windows"].size());
  loss.backward();
  const torch::Tensor g = acts.grad().contiguous();
  std::vector<double> grad(g.data_ptr<double>(), g.data_ptr<double>() + g.numel());
  std::ofstream(argv[2]) << nlohmann::json{{"loss", loss.item<double>()}, {"gradient", grad}, {"units", units}}.dump();
  return 0;
}
