# Report ingestion (engineer core): ParseReportBatch/ValidateReportBatch on hostile protobuf
# bodies, plus the downward API labels parser.
kpiscale_add_fuzz_target(report SOURCE ${CMAKE_CURRENT_LIST_DIR}/report_fuzz.cc
                         LIBS kpiscale::common)
