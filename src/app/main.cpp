// The `strata` executable: a thin shell over the commands in app/.

#include "app/commands.h"

#include <cstdio>

int main(int argc, char** argv) {
    CLI::App app{
        "strata: run Mixture-of-Experts language models from GGUF files (run, chat and serve fall "
        "back to the "
        "built-in strata-tiny-moe when given none)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "strata 0.1.0");
    int exit_code = 0;
    strata::app::add_probe_command(app, exit_code);
    strata::app::add_synth_command(app, exit_code);
    strata::app::add_run_command(app, exit_code);
    strata::app::add_serve_command(app, exit_code);
    strata::app::add_list_command(app, exit_code);
    strata::app::add_logits_command(app, exit_code);
    strata::app::add_tokenize_command(app, exit_code);
    strata::app::add_template_command(app, exit_code);
    strata::app::add_bench_command(app, exit_code);
    strata::app::add_validate_command(app, exit_code);
    strata::app::add_devices_command(app, exit_code);
    CLI11_PARSE(app, argc, argv);
    return exit_code;
}
