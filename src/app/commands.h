#pragma once
// Each CLI command registers itself as a CLI11 subcommand. A command's callback
// sets `exit_code`; errors are printed to stderr as "error: <message>".

#include <CLI/CLI.hpp>

namespace strata::app {

void add_probe_command(CLI::App& app, int& exit_code);
void add_synth_command(CLI::App& app, int& exit_code);
void add_tokenize_command(CLI::App& app, int& exit_code);
void add_logits_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);
void add_list_command(CLI::App& app, int& exit_code);
void add_template_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_validate_command(CLI::App& app, int& exit_code);
void add_devices_command(CLI::App& app, int& exit_code);

// Prints "error: <message>" to stderr and returns the exit code for failures.
int fail(const std::string& message);

}  // namespace strata::app
