# cmake -DCMD=<program;args...> -DEXIT=<status> [-DMATCH=<regex>]
#       [-DNOMATCH=<regex>] -P expect.cmake
# Runs CMD once and fails unless it exits with EXIT and its output
# (stdout + stderr) matches MATCH and does not match NOMATCH.  For checks
# a plain ctest test cannot express: an exact non-zero exit status
# together with the text that explains it.
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE out TIMEOUT 240)
if(NOT rc STREQUAL "${EXIT}")
  message(FATAL_ERROR "expected exit status ${EXIT}, got '${rc}':\n${out}")
endif()
if(DEFINED MATCH AND NOT out MATCHES "${MATCH}")
  message(FATAL_ERROR "output does not match '${MATCH}':\n${out}")
endif()
if(DEFINED NOMATCH AND out MATCHES "${NOMATCH}")
  message(FATAL_ERROR "output matches '${NOMATCH}':\n${out}")
endif()
message(STATUS "exit ${rc} as expected")
