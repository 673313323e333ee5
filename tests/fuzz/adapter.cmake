# The adapter's request router (any request target, method and Accept header) and its ingest
# decoder (any report body), over a store with a few pods.
kpiscale_add_fuzz_target(adapter_api SOURCE ${CMAKE_CURRENT_LIST_DIR}/adapter_api_fuzz.cc
                         LIBS kpiscale::adapter)
