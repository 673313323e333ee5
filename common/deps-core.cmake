# Link dependencies of config (CLI11), process metrics (prometheus-cpp core) and the HTTP helpers
# (cpp-httplib, through pkg-config so its feature macros match the Debian library).
target_link_libraries(kpiscale_common PUBLIC CLI11::CLI11 prometheus-cpp::core PkgConfig::HTTPLIB)
