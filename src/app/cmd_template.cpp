// `strata template`: not yet written (issue 3); registers nothing until then.

#include "app/commands.h"

namespace strata::app {
void add_template_command(CLI::App&, int&) {}
}  // namespace strata::app
