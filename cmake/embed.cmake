# Writes OUTPUT, a C file defining `const char NAME[]`: the bytes of INPUT as one string literal.
# Run as `cmake -DINPUT=... -DOUTPUT=... -DNAME=... -P embed.cmake`, so a page is kept as a real
# HTML file (readable, checkable by tools) and still built into the program. Every byte is written
# as \xNN, so no escape can run into the next character.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "(................................................................)" "\\1\"\n\"" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" bytes "${hex}")
file(WRITE "${OUTPUT}" "/* Generated from ${INPUT} by cmake/embed.cmake: do not edit. */\nconst char ${NAME}[] =\n\"${bytes}\";\n")
