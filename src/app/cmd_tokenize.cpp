// `strata tokenize`: not yet written (issue 3); registers nothing until then.

#include "app/commands.h"

namespace strata::app {
void add_tokenize_command(CLI::App&, int&) {}
}  // namespace strata::app
