    .section .entry.text, "ax"
    .global miniboot_entry
    .align 4
miniboot_entry:
    movi    a1, 0x3FFFFFF0
    call0   miniboot_main
    .global miniboot_jump
    .align 4
miniboot_jump:
    movi    a1, 0x3FFFFFF0
    jx      a2
