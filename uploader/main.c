/* logferry-uploader: entry point. */
#include <stdio.h>

int main(void)
{
    printf("logferry-uploader\n");
    return 0;
}
