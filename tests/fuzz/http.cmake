kpiscale_add_fuzz_target(http_parser SOURCE ${CMAKE_CURRENT_LIST_DIR}/http_parser_fuzz.cc
                         LIBS kpiscale::sidecar)
