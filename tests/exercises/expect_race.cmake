# cmake -DEXE=<exercise binary> -DNAME=<exercise> [-DTRIES=3]
#       -P expect_race.cmake
#
# The `exercise.NAME.untouched` test: passes when the untouched exercise
# fails the way it should in one of TRIES runs - its own verdict (exit
# status 1 and "FAIL NAME:") or a ThreadSanitizer report of a data race
# or a lock-order inversion (a tsan build).
# A run that passes (exit 0) is tried again: races depend on scheduling.
# Anything else fails at once: a crash, a timeout, a usage or harness error
# (exit 2), or a report from ASan, LSan or UBSan (a bug that is not the
# exercise's race).
if(NOT DEFINED TRIES)
  set(TRIES 3)
endif()
foreach(try RANGE 1 ${TRIES})
  execute_process(COMMAND ${EXE} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out TIMEOUT 60)
  if(out MATCHES
     "AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error")
    message(FATAL_ERROR "run ${try}: a sanitizer found a bug other than the "
                        "exercise's race (exit '${rc}'):\n${out}")
  endif()
  if(out MATCHES "WARNING: ThreadSanitizer: (data race|lock-order-inversion)")
    message(STATUS "${out}")
    message(STATUS "run ${try}: ThreadSanitizer reported the race "
                   "(${CMAKE_MATCH_1}, exit ${rc}): the untouched exercise "
                   "fails, as it should")
    return()
  endif()
  if(rc STREQUAL "1" AND out MATCHES "\nFAIL ${NAME}: ")
    message(STATUS "${out}")
    message(STATUS "run ${try}: exit 1, the untouched exercise fails, "
                   "as it should")
    return()
  endif()
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "run ${try}: unexpected exit status '${rc}' (a crash, "
                        "a hang or a harness error):\n${out}")
  endif()
  message(STATUS "run ${try}: the race did not show this time (exit 0)")
endforeach()
message(FATAL_ERROR "the untouched exercise passed ${TRIES} runs out of "
                    "${TRIES}: its race never showed (if you fixed "
                    "tests/exercises/${NAME}.c yourself, that is why: this "
                    "test checks the exercise as shipped)")
