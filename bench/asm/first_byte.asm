; Boot to the first serial byte (bench/hvm.ts): SeaBIOS loads this sector
; from the first disk; it writes one byte to COM1 and halts.
bits 16
org 0x7c00
    mov dx, 0x3f8
    mov al, '!'
    out dx, al
.halt:
    cli
    hlt
    jmp .halt
    times 510 - ($ - $$) db 0
    dw 0xaa55
